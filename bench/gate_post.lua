-- wrk script: POST one ActiveSync request, the same for every request (a known device).
--   wrk -s bench/gate_post.lua URL -- PATH AUTHORIZATION [USER-AGENT]
-- PATH carries the query string (Cmd, User, DeviceId, DeviceType); AUTHORIZATION is the
-- whole header value ("Basic ..."). At the end it prints one line, WRK_JSON {...}.

local report = dofile("bench/wrk_report.lua")

function init(args)
  wrk.method = "POST"
  wrk.path = args[1]
  wrk.body = ""
  wrk.headers["Authorization"] = args[2]
  wrk.headers["User-Agent"] = args[3] or "Apple-iPhone15C2/2106.90"
  wrk.headers["MS-ASProtocolVersion"] = "16.1"
  wrk.headers["Content-Type"] = "application/vnd.ms-sync.wbxml"
end

done = report.done
