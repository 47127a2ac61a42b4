-- wrk script: POST ActiveSync Provision requests, each from a device never seen before.
--   wrk -s bench/gate_new.lua URL -- PATH AUTHORIZATION RUN-TOKEN
-- PATH is the query string without DeviceId; every request appends a DeviceId made of the
-- run token, the wrk thread's number and a counter, so every request is a first contact.

local report = dofile("bench/wrk_report.lua")

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

local path, token, counter = nil, nil, 0

function init(args)
  path = args[1]
  token = args[3] .. "T" .. number .. "N"
  wrk.headers["Authorization"] = args[2]
  wrk.headers["User-Agent"] = "Apple-iPhone16C1/2204.82"
  wrk.headers["MS-ASProtocolVersion"] = "16.1"
  wrk.headers["Content-Type"] = "application/vnd.ms-sync.wbxml"
end

function request()
  counter = counter + 1
  return wrk.format("POST", path .. "&DeviceId=" .. token .. counter, nil, "")
end

done = report.done
