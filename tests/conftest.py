"""Shared test fixtures."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models on a shared CPU: one torch thread is fastest and deterministic."""
    from rmtgan.gan import threads

    with threads(1):
        yield
