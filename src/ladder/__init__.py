"""ladder: customise a language model one measured rung at a time."""
