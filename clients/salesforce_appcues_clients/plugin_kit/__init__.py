"""What the plugins share about being Singer plugins, apart from the HTTP clients.

The modules one level up talk to Salesforce and Appcues and know nothing of Singer; the
ones here read Singer input, write dead letters and run summaries, lock runs and add the
targets' command-line options. Only this subpackage imports singer-sdk.
"""
