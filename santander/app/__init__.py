"""The page to try it all (`santander app`): a Streamlit app over the running server's V2
REST API, the model repository and the prediction log. Its own process, beside the server:
the deploy image stays serving-only. It imports neither the serving nor the training side."""
