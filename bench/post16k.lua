-- wrk script: every request is a POST with a 16 KiB body (Content-Length framing).
--   wrk -t1 -c50 -d10s --latency -s bench/post16k.lua http://127.0.0.1:PORT/post
-- wrk.format() adds the Content-Length header from wrk.body.
wrk.method = "POST"
wrk.body = string.rep("x", 16 * 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
