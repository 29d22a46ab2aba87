"""Run-time configuration: the ``Settings`` every component is given, and the logging set-up."""
