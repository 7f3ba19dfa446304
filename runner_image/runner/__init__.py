"""Runs allowlisted `php artisan` commands of a Laravel app in Lambda or on Fargate.

Pure core: config, commands, events, artifacts, redact, process, isolation, rundir, workspace,
execution (none imports boto3). Thin shells: handler (Lambda), cli (Fargate and local runs), aws.
"""
