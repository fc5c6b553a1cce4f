"""Operating a model repository: its versions (promote, retire, the admin API) and the server
process launcher. Imports the top level only."""
