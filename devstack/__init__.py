"""Everything needed to run the whole of Verbatim on one machine: emulators, local Functions host, simulator."""
