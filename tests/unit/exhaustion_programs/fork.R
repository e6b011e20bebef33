# 30 forked R workers alive together (parallel::mcparallel forks through mcfork).
library(parallel)
jobs <- lapply(1:30, function(i) mcparallel(Sys.sleep(5)))
invisible(mccollect(jobs))
