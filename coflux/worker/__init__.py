"""Workers: headless process pools (`coflux worker`) and notebook kernels (`cf.attach()`)."""
