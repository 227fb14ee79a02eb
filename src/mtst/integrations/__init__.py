"""mtst's predictions in the shapes other tools read: Rasa's parse result, spaCy's Doc."""
