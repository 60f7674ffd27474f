"""Pure KPI maths: mergeable summaries and the contract's formulas. No Faust import here."""
