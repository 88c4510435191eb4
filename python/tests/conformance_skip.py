"""Known limits of the core that the Python tests meet, in one place.

Empty now: io_uring's enter came back without EINTR when it had submitted
requests and a signal cut its wait short; the backend now reports EINTR.
A backend named here has its signal tests skipped, with this reason shown.
"""

SIGNALS_DO_NOT_END_A_WAIT = {}
