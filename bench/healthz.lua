-- wrk script: GET the URL as is (/healthz); prints WRK_JSON {...} at the end.
done = dofile("bench/wrk_report.lua").done
