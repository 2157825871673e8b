# Sidekiq OSS fetches with BasicFetch#retrieve_work (lib/sidekiq/fetch.rb): a BRPOP that takes the
# job out of Redis, and UnitOfWork#acknowledge does nothing, so a job whose process is SIGKILLed is
# lost (it is nowhere in Redis any more; only SIGTERM's hard_shutdown pushes in-progress jobs back).
#
# qsim's adapter for Sidekiq 6.4 (system/frameworks/README.md is the protocol):
#   ruby system/frameworks/sidekiq/qsim_sidekiq.rb handoff   # POST /enqueue -> perform_async
#   ruby system/frameworks/sidekiq/qsim_sidekiq.rb worker    # Sidekiq's own CLI in this process
# QSIM_CONFIG (wall seconds, all optional): concurrency (1), retry (25; false/0: none), retry_in_s
# (fixed delay instead of Sidekiq's formula), retry_scale (times Sidekiq's formula), poll_interval_s
# (average_scheduled_poll_interval, 5), shutdown_timeout_s (Sidekiq's -t, 25).
require "json"
require "net/http"
require "openssl"
require "webrick"
require "sidekiq"

Redis.silence_deprecations = true  # redis-rb 4.8 on Sidekiq 6.4 calls (brpop timeout, sadd)
CONFIG = JSON.parse(ENV["QSIM_CONFIG"].to_s.empty? ? "{}" : ENV["QSIM_CONFIG"])
# retry: 0 rather than false, so that sidekiq_retries_exhausted runs for a failed job: with
# retry false JobRetry#local re-raises and only the global death handlers see it (job_retry.rb).
# The enqueue side stamps this into the payload (Client#normalize_item), so both must agree.
RETRIES = case (r = CONFIG.fetch("retry", true)) when true then 25 when false, nil then 0 else Integer(r) end
IN_FLIGHT = %w[paid processing downloading uploading finalizing].freeze
RESTARTABLE = %w[paid processing downloading uploading].freeze

class Transient < StandardError; end  # 5xx, 429, timeout, refused: raised, Sidekiq retries it
class Permanent < StandardError; end  # any other non-2xx, no order: never retried (see perform)

module Qsim
  module_function

  def env(name) = ENV.fetch(name) { raise "#{name} is not set" }
  def base = env("QSIM_STORE_BASE")

  # Sidekiq.redis options for QSIM_REDIS_URL: redis://... as it is; the failover form
  # redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME as redis-rb 4's own Sentinel support
  # (Redis::Client::Connector::Sentinel): every (re)connect asks a Sentinel for the primary's address,
  # so after a failover the reconnect that follows the first failed command reaches the promoted one.
  def redis_options(**extra)
    url = env("QSIM_REDIS_URL")
    return { url: url, **extra } unless url.start_with?("redis+sentinel:")
    m = %r{\Aredis\+sentinel://([^/]+)/([^/]+)\z}.match(url)
    sentinels = m && m[1].split(",").map do |a|
      host, _, port = a.rpartition(":")
      { host: host, port: Integer(port, exception: false) }
    end
    if sentinels.nil? || sentinels.any? { |s| s[:host].empty? || s[:port].nil? }
      raise ArgumentError, "QSIM_REDIS_URL: want redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTERNAME, got #{url}"
    end
    { url: "redis://#{m[2]}", sentinels: sentinels, role: :master, **extra }
  end

  def script
    @script ||= env("QSIM_STORE_TRANSITION").then { |s| [s, OpenSSL::Digest::SHA1.hexdigest(s)] }
  end

  # The store's transition script: EVALSHA, EVAL when Redis does not have it (yet, or any more).
  def move(id, to, from, error = "")
    src, sha = script
    keys = ["#{base}order:#{id}", "#{base}store_queries"]
    argv = [base, env("QSIM_COMPONENT"), id, to, "#{env('QSIM_WORKER_ID')}##{Process.pid}", error.to_s[0, 500], *from]
    moved = Sidekiq.redis do |c|
      c.evalsha(sha, keys: keys, argv: argv)
    rescue Redis::CommandError => e
      raise unless e.message.start_with?("NOSCRIPT")
      c.eval(src, keys: keys, argv: argv)
    end
    moved == 1
  end

  def status(id)
    Sidekiq.redis do |c|
      c.pipelined do |p|
        p.hget("#{base}order:#{id}", "status")
        p.hincrby("#{base}store_queries", env("QSIM_COMPONENT"), 1)
      end
    end.first
  end

  def dead(id, error) = move(id, "dead", IN_FLIGHT, error)

  def post(url_var, path, body, headers = {})
    uri = URI(env(url_var))
    t = Float(env("QSIM_STAGE_TIMEOUT_S"))
    res = Net::HTTP.start(uri.host, uri.port, open_timeout: t, read_timeout: t, write_timeout: t) do |h|
      h.post(path, body, { "Content-Type" => "application/json" }.merge(headers))
    end
    code = res.code.to_i
    return if (200..299).cover?(code)
    raise (code >= 500 || code == 429 ? Transient : Permanent), "#{path}: HTTP #{code} #{res.body}"
  rescue Timeout::Error, SystemCallError, IOError, SocketError => e  # Net::*Timeout, ECONNREFUSED, EOF
    raise Transient, "#{path}: #{e.class}: #{e.message}"
  end

  def secret
    @secret ||= ENV["QSIM_FINALIZE_SECRET"].to_s.empty? ? File.open(env("QSIM_FINALIZE_SECRET_FILE"), &:gets).to_s.chomp.sub(/[\r ]+\z/, "") : ENV["QSIM_FINALIZE_SECRET"]
  end

  def finalize(id)
    body = JSON.generate({ "order_id" => id })
    ts = Time.now.to_i.to_s
    sig = "sha256=" + OpenSSL::HMAC.hexdigest("SHA256", secret, "#{ts}.#{body}")
    post("QSIM_FINALIZE_URL", "/webhooks/finalize", body, "X-Qsim-Timestamp" => ts, "X-Qsim-Signature" => sig)
  end

  def health_server(port, &routes)
    srv = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: Integer(port), AccessLog: [],
                                  Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN))
    srv.mount_proc("/health") { |_req, res| res.body = "ok" }
    routes&.call(srv)
    srv
  end
end

class OrderJob
  include Sidekiq::Job
  sidekiq_options retry: RETRIES
  # The last attempt failed (or retry was 0): the order goes to dead with the last error.
  sidekiq_retries_exhausted { |msg, ex| Qsim.dead(msg["args"][0], "#{ex.class}: #{ex.message}") }

  def perform(id)
    2.times do |look|
      s = Qsim.status(id)
      raise Permanent, "no order '#{id}' in the task store" if s.nil?
      return if s == "completed"                           # redelivered after finalize: done
      return Qsim.finalize(id) if s == "finalizing"        # never pull an order back from finalize
      break if Qsim.move(id, "processing", RESTARTABLE)
      raise Permanent, "order '#{id}' is #{s}, not payable work" if look == 1
    end
    return unless forward(id, "processing", "downloading")
    Qsim.post("QSIM_WORLD_URL", "/api/download", JSON.generate(order_id: id, key: "download:#{id}"))
    return unless forward(id, "downloading", "uploading")
    Qsim.post("QSIM_WORLD_URL", "/api/upload", JSON.generate(order_id: id, key: "upload:#{id}"))
    return unless forward(id, "uploading", "finalizing")
    Qsim.finalize(id)
  rescue Permanent => e
    # Sidekiq 6.4 retries every exception its job allows: sidekiq_retry_in's :kill came in 6.5
    # (here JobRetry#delay_for calls .to_i on it, fails, and the job is retried on the default
    # formula). So a permanent error is handled here: the order goes to dead, the job succeeds.
    logger.warn("permanent: #{e.message}")
    Qsim.dead(id, "#{e.class}: #{e.message}")
  end

  private

  # A move that fails: another delivery of this order has taken it over. Stop, no error.
  def forward(id, from, to)
    Qsim.move(id, to, [from]) or (logger.info("order #{id} left #{from} meanwhile: superseded"); false)
  end
end

# Benchmark mode (README "Benchmark mode"): a no-op job; every worker can run it.
class NoopJob
  include Sidekiq::Job
  sidekiq_options retry: 0

  def perform(enqueued_us)
    q = Qsim.env("QSIM_QUEUE")
    now = (Time.now.to_r * 1_000_000).to_i
    Sidekiq.redis do |c|
      c.pipelined do |p|
        p.rpush("#{q}:bench:pickup_us", now - enqueued_us) if enqueued_us.positive?
        p.incr("#{q}:bench:done")
      end
    end
  end
end

case ARGV[0]
when "bench-fill", "bench-pickup"
  Sidekiq.redis = Qsim.redis_options(size: 1)
  n = Integer(ARGV[1] || abort("usage: #{ARGV[0]} N [RATE]"))
  rate = ARGV[0] == "bench-pickup" ? Float(ARGV[2] || abort("usage: bench-pickup N RATE")) : nil
  job = NoopJob.set(queue: Qsim.env("QSIM_QUEUE"))
  start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  n.times do |i|
    if rate
      wait = start + i / rate - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      sleep(wait) if wait.positive?
    end
    job.perform_async(rate ? (Time.now.to_r * 1_000_000).to_i : 0)
  end
when "handoff"
  Sidekiq.redis = Qsim.redis_options(size: 5)
  queue = Qsim.env("QSIM_QUEUE")
  srv = Qsim.health_server(Qsim.env("QSIM_HANDOFF_PORT")) do |s|
    s.mount_proc("/enqueue") do |req, res|
      res["Content-Type"] = "application/json"
      body = (JSON.parse(req.body.to_s) rescue nil)
      id = body.is_a?(Hash) ? body["order_id"] : nil
      if req.request_method != "POST" || !id.is_a?(String) || id.empty?
        res.status = 400
        res.body = JSON.generate(error: 'expected POST {"order_id": "<id>"}')
        next
      end
      begin
        jid = OrderJob.set(queue: queue).perform_async(id) or raise "not enqueued (client middleware)"
        res.body = JSON.generate(job_id: jid)
      rescue StandardError => e  # Redis::BaseError, ConnectionPool::TimeoutError, ...
        res.status = 503
        res.body = JSON.generate(error: "#{e.class}: #{e.message}")
      end
    end
  end
  hp = ENV["QSIM_HEALTH_PORT"]
  Thread.new { Qsim.health_server(hp).start } if hp && hp != ENV["QSIM_HANDOFF_PORT"]
  %w[TERM INT].each { |sig| trap(sig) { srv.shutdown } }
  srv.start
when "worker"
  require "sidekiq/cli"
  require "sidekiq/job_retry"
  require "sidekiq/scheduled"
  if CONFIG.key?("retry_in_s") || CONFIG.key?("retry_scale")
    # JobRetry#delay_for: (count**4) + 15 + rand(10) * (count + 1) seconds. sidekiq_retry_in would
    # keep the jitter and round to whole seconds (.to_i, and 0 falls back to the formula).
    Sidekiq::JobRetry.prepend(Module.new do
      private def delay_for(worker, count, ex)
        CONFIG.key?("retry_in_s") ? Float(CONFIG["retry_in_s"]) : super * Float(CONFIG["retry_scale"])
      end
    end)
  end
  if (poll = CONFIG["poll_interval_s"])
    # Each process polls the retry/schedule sets every process_count * poll * (0.5..1.5) s, the
    # first time after Poller#initial_wait (10 + 5 * rand s, unscaled): scale that one too.
    Sidekiq.options[:average_scheduled_poll_interval] = Float(poll)
    Sidekiq::Scheduled::Poller.prepend(Module.new do
      private def initial_wait
        @sleeper.pop(Float(CONFIG["poll_interval_s"]) / 5 * (Sidekiq::Scheduled::Poller::INITIAL_WAIT + 5 * rand))
      rescue Timeout::Error
      end
    end)
  end
  cli = Sidekiq::CLI.instance
  # -r only satisfies CLI#validate!; run(boot_app: false) since this file is loaded already.
  cli.parse(["-r", File.expand_path(__FILE__), "-q", Qsim.env("QSIM_QUEUE"),
             "-c", Integer(CONFIG.fetch("concurrency", 1)).to_s])
  Sidekiq.options[:timeout] = Float(CONFIG["shutdown_timeout_s"]) if CONFIG.key?("shutdown_timeout_s")
  Sidekiq.redis = Qsim.redis_options  # after parse: pool size is concurrency + 5
  # :startup fires after Sidekiq has reached Redis, just before the processors start fetching.
  Sidekiq.on(:startup) { Thread.new(Qsim.health_server(Qsim.env("QSIM_HEALTH_PORT")), &:start) }
  cli.run(boot_app: false)
else
  abort "usage: ruby #{$0} handoff|worker|bench-fill N|bench-pickup N RATE"
end
