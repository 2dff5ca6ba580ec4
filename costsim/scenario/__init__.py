"""Agent scenarios: load scenario files and cost them turn by turn (see docs/scenarios.md)."""
