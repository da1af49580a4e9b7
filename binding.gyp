{
  "targets": [
    {
      "target_name": "walrewind_native",
      "sources": ["native/addon.c", "native/crc32c.c", "native/wal-scan.c"],
      "cflags": ["-O2"]
    }
  ]
}
