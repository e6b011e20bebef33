# 200 Ruby threads alive together: under a small pids budget, Thread.new is refused.
threads = 200.times.map { Thread.new { sleep 5 } }
threads.each(&:join)
