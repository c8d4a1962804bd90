# HTTP stack benchmark server (bench/http.sh drives it with wrk next to nginx).
$(eval $(call bench_program,http_bench_server,bench/http/server.c))
