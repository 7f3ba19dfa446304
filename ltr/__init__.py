"""`ltr`: the command users type to run the Lambda Test Runner on demand and read its results."""
