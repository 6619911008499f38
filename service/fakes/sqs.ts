import { createHash, randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { ControllableServer, json } from './controllable-server';

/** A message the fake queue accepted. */
export interface FakeSqsMessage {
  readonly queueUrl: string;
  readonly messageId: string;
  readonly body: string;
}

/** A per-entry failure of SendMessageBatch, as SQS reports it (`BatchResultErrorEntry`). */
export interface FakeEntryFailure {
  readonly Code: string;
  readonly SenderFault: boolean;
  readonly Message?: string;
}

/** How one queue misbehaves: `hang` never answers, `error` answers 500 InternalError. */
export type FakeQueueMode = 'hang' | 'error';

export interface FakeSqsOptions {
  /** Called for every message accepted. */
  readonly onMessage?: (m: FakeSqsMessage) => void;
  /**
   * The queue names that exist; a request for another one is answered as SQS answers a
   * wrong queue URL (400 QueueDoesNotExist).
   *
   * @default every queue exists
   */
  readonly queues?: readonly string[];
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/** The characters SQS accepts in a message body; it refuses a message with any other one. */
const SQS_BODY = /^[\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]*$/u;

const queueName = (queueUrl: string) => queueUrl.split('/').pop() ?? '';

/**
 * Just enough of SQS (AWS JSON protocol) for `npm run service:local` on a machine with
 * Node alone and for tests that need a fault moto_server cannot produce:
 * SendMessage and SendMessageBatch are accepted and kept in memory (`GET /__messages`
 * lists them). Like SQS, it refuses a body with characters outside SQS's set, entry by
 * entry (`InvalidMessageContents`, a sender fault), and answers `QueueDoesNotExist` for
 * a queue it does not know (when given its queues). Per queue it can hang or fail
 * (`setQueueMode`), and `entryFailure` fails chosen entries.
 */
export class FakeSqs extends ControllableServer {
  readonly messages: FakeSqsMessage[] = [];
  /** SendMessage / SendMessageBatch requests received, answered or not. */
  sendRequests = 0;
  /** Fails the entries for which it returns a failure (in addition to SQS's own checks). */
  entryFailure: (body: string, queueName: string) => FakeEntryFailure | undefined = () => undefined;
  private readonly queueModes = new Map<string, FakeQueueMode>();
  private readonly onMessage: (m: FakeSqsMessage) => void;
  private readonly queues: ReadonlySet<string> | undefined;

  constructor(options: FakeSqsOptions | ((m: FakeSqsMessage) => void) = {}) {
    super((req, body, res) => this.handle(req, body, res));
    const resolved = typeof options === 'function' ? { onMessage: options } : options;
    this.onMessage = resolved.onMessage ?? (() => undefined);
    this.queues = resolved.queues ? new Set(resolved.queues) : undefined;
  }

  /** Makes one queue hang or fail; `undefined` heals it. */
  setQueueMode(name: string, mode: FakeQueueMode | undefined): void {
    if (mode) this.queueModes.set(name, mode);
    else this.queueModes.delete(name);
  }

  /** Bodies accepted for one queue (by name), parsed. */
  received(name: string): Record<string, unknown>[] {
    return this.messages
      .filter((m) => queueName(m.queueUrl) === name)
      .map((m) => JSON.parse(m.body) as Record<string, unknown>);
  }

  private handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    if (req.method === 'GET' && req.url === '/__messages') return json(res, 200, this.messages);
    const target = String(req.headers['x-amz-target'] ?? '');
    let input: { QueueUrl?: string; MessageBody?: string; Entries?: { Id: string; MessageBody: string }[] };
    try {
      input = JSON.parse(body) as typeof input;
    } catch {
      return json(res, 400, { __type: 'InvalidParameterValue', message: 'body must be JSON' });
    }
    if (target !== 'AmazonSQS.SendMessage' && target !== 'AmazonSQS.SendMessageBatch') {
      return json(res, 400, {
        __type: 'UnsupportedOperation',
        message: `fake SQS does not implement ${target}`,
      });
    }
    this.sendRequests++;
    const queueUrl = input.QueueUrl ?? '';
    const name = queueName(queueUrl);
    const mode = this.queueModes.get(name);
    if (mode === 'hang') return; // the socket stays open until the client gives up
    if (mode === 'error') return json(res, 500, { __type: 'InternalError', message: 'injected outage' });
    if (this.queues && !this.queues.has(name)) {
      res.setHeader('x-amzn-query-error', 'AWS.SimpleQueueService.NonExistentQueue;Sender');
      return json(res, 400, {
        __type: 'com.amazonaws.sqs#QueueDoesNotExist',
        message: 'The specified queue does not exist.',
      });
    }
    const refusal = (text: string): FakeEntryFailure | undefined =>
      SQS_BODY.test(text)
        ? this.entryFailure(text, name)
        : {
            Code: 'InvalidMessageContents',
            SenderFault: true,
            Message:
              'Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF',
          };
    const accept = (text: string) => {
      const message = { queueUrl, messageId: randomUUID(), body: text };
      this.messages.push(message);
      this.onMessage(message);
      return message;
    };
    if (target === 'AmazonSQS.SendMessage' && typeof input.MessageBody === 'string') {
      const failure = refusal(input.MessageBody);
      if (failure) return json(res, 400, { __type: failure.Code, message: failure.Message ?? failure.Code });
      const m = accept(input.MessageBody);
      return json(res, 200, { MessageId: m.messageId, MD5OfMessageBody: md5(m.body) });
    }
    if (target === 'AmazonSQS.SendMessageBatch' && Array.isArray(input.Entries)) {
      const Successful: { Id: string; MessageId: string; MD5OfMessageBody: string }[] = [];
      const Failed: ({ Id: string } & FakeEntryFailure)[] = [];
      for (const entry of input.Entries) {
        const failure = refusal(entry.MessageBody);
        if (failure) {
          Failed.push({ Id: entry.Id, ...failure });
          continue;
        }
        const m = accept(entry.MessageBody);
        Successful.push({ Id: entry.Id, MessageId: m.messageId, MD5OfMessageBody: md5(entry.MessageBody) });
      }
      return json(res, 200, { Successful, Failed });
    }
    json(res, 400, { __type: 'MissingParameter', message: 'MessageBody or Entries is required' });
  }
}
