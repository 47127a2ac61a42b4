-- wrk script: GET /eas/auth as nginx's auth_request sends it for a known device's request.
--   wrk -s bench/gate_auth.lua URL -- ORIGINAL-URI AUTHORIZATION [USER-AGENT]
-- ORIGINAL-URI is the device's path and query (X-Original-URI); the method is POST.

local report = dofile("bench/wrk_report.lua")

function init(args)
  wrk.method = "GET"
  wrk.path = "/eas/auth"
  wrk.headers["X-Original-URI"] = args[1]
  wrk.headers["X-Original-Method"] = "POST"
  wrk.headers["Authorization"] = args[2]
  wrk.headers["User-Agent"] = args[3] or "Apple-iPhone15C2/2106.90"
  wrk.headers["MS-ASProtocolVersion"] = "16.1"
end

done = report.done
