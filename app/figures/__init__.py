"""Pure figure builders: DataFrame + settings → plotly Figure, shared by the live app and the export."""
