"""cryptoarena flows (not part of the installed package): ``arena flows run NAME``."""

from cryptoarena.console import quiet_libraries

# Before any flow module imports prefect: telemetry off for this project's runs.
quiet_libraries()
