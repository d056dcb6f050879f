"""Imports in the worker's parent process but fails in its pool processes (they are spawned,
so multiprocessing.parent_process() is set there)."""

import multiprocessing

import coflux as cf


def check_process() -> None:
    if multiprocessing.parent_process() is not None:
        raise ValueError("this module refuses to load in a pool process")


check_process()


@cf.workflow()
def hello() -> str:
    return "hello"
