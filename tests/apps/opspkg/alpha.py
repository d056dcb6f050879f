import coflux as cf

from .sub.beta import double


@cf.workflow()
def twice(x: int) -> int:
    return double(x)
