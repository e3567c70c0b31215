"""Reports: the headless notebook runner behind ``make figures`` and the documentation site."""
