"""Documents we produce for people: invoice PDFs (fpdf2)."""
