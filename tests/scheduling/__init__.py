"""The option semantics of design.md section 3, through real `coflux server` / `coflux worker`
processes (a package, so its test module names cannot clash with other test directories)."""
