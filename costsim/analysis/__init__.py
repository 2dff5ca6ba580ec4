"""Analysis: what users ask of the stages below: inspection, sweeps, crossovers, agent tasks turn by turn,
the report."""
