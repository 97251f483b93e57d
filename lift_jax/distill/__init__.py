"""Context-distilled LIFT (`lift+cd`): questions about each sentence, answered by the base model reading the
document around it (the teacher), learned by the adapter from the question alone (the student)."""
