"""Pure domain logic, no I/O: the virtual actors' classes, rules, envelopes, messages and schedules.

Everything here is plain Python, testable without Ray, a database or a network (docs/architecture.md)."""
