"""Mutation testing of the delivery core: the runner of `make mutation`, its CI run, the equivalents."""
