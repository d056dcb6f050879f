"""Workers: headless process pools (`coflux worker`) and notebook kernels (`cf.attach()`).

Layer: the workers, above the client and the runtime's implementation (coflux/context.py).
"""
