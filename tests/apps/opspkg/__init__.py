"""A package a worker hosts whole (`coflux worker opspkg`): its modules, at any depth."""
