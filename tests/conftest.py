"""Markers: `long` tests (minutes each) run only with `make test-long`; `make test` deselects them."""


def pytest_configure(config):
    config.addinivalue_line("markers", "long: minute-long soak tests, run by `make test-long`")
