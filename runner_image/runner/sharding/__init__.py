"""Sharded runs (issue 13), the runner's side: plan a suite into shards, run one shard.

plan.py, phpunit.py and databases.py are pure; planning.py and shard_db.py run processes.
"""
