"""Synthetic QA generation: sentences of a document -> question-answer pairs, cached crash-safely."""
