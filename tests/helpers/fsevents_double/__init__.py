"""A test double of watchdog's `_watchdog_fsevents` C extension (see `_watchdog_fsevents.py`)."""
