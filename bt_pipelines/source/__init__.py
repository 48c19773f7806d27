"""The source side: talking to Braintrust (HTTP client, query building, object catalog)."""
