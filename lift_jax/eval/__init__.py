"""Evaluation building blocks: benchmark loaders (NIAH, SQuAD, LooGLE), metrics, result records and plots."""
