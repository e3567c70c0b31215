"""SimPy discrete-event model of agent rollouts, closed forms, and sweeps."""
