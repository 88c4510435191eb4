"""Known limits of the core that the Python tests meet, in one place."""

SIGNALS_DO_NOT_END_A_WAIT = {
    'io_uring': 'known core bug: the io_uring backend does not end wait_or_signal() on a signal '
                '(Conformance/Timeout.WaitOrSignalEndsOnASignalAndOtherwiseWaitsAsWait/io_uring), '
                'so a Python signal handler runs only when the wait ends',
}
