"""The serving process sets the cyclic garbage collector up once started (``serve`` and
each worker call :func:`gateway.app.prepare_collector`): the start-up heap frozen out of
full collections, a young generation of GC_YOUNG_THRESHOLD objects."""

from __future__ import annotations

import gc

from gateway.app import GC_YOUNG_THRESHOLD, prepare_collector


def test_prepare_collector_freezes_the_startup_heap_and_widens_the_young_generation() -> None:
    before = gc.get_threshold()
    kept = [[i] for i in range(100)]  # live objects of "the start": frozen with the rest
    try:
        prepare_collector()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() >= len(kept)
        assert gc.isenabled()  # tuned, never switched off: memory stays bounded
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()  # this test process goes on allocating and freeing
    assert GC_YOUNG_THRESHOLD > before[0]
