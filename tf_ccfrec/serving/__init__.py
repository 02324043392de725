"""`ccfrec serve`: TF Serving's REST and gRPC APIs over exported CCFRec SavedModels (`server`), and
the REST client of that API (`client`), which works against stock TF Serving too."""
