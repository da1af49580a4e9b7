{
  "targets": [
    {
      "target_name": "record_crcs",
      "sources": ["native/record-crcs.c"],
      "cflags": ["-O2"]
    }
  ]
}
