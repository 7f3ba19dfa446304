"""The cdktf stack for the Lambda Test Runner.

Import nothing here: `modules.config` must stay importable without the provider bindings
(the `ltr` CLI and the demo read resource names from it), and importing the bindings alone
takes ~20 seconds. Constructs live in one module per concern and are composed by `stack.py`.
"""
