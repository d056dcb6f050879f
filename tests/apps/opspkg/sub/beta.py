import coflux as cf


@cf.task()
def double(x: int) -> int:
    return 2 * x


@cf.workflow()
def quadruple(x: int) -> int:
    return double(double(x))
