"""Sharded runs (issue 13), the runner's side: plan a suite into shards, run one shard.

plan.py, phpunit.py and databases.py are pure; planning.py (the plan event), shard.py (what
execution.py needs for a shard) and shard_db.py (PHP's PDO for create/drop) are the shell.
"""
