"""The timing rule every inference peer uses (and Graft's graft-bench: one warm-up, median of 5)."""
import statistics
import time


def median_seconds(call, repetitions=5):
    """The median wall time of `repetitions` calls after one warm-up call."""
    call()
    samples = []
    for _ in range(repetitions):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
