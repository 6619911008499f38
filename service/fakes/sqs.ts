import { createHash, randomUUID } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { ControllableServer, json } from './controllable-server';

/** A message the fake queue accepted. */
export interface FakeSqsMessage {
  readonly queueUrl: string;
  readonly messageId: string;
  readonly body: string;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

/**
 * Just enough of SQS (AWS JSON protocol) for `npm run service:local` on a machine with
 * Node alone: SendMessage and SendMessageBatch are accepted and kept in memory
 * (`GET /__messages` lists them). Tests use moto_server, a full emulator, instead.
 */
export class FakeSqs extends ControllableServer {
  readonly messages: FakeSqsMessage[] = [];

  constructor(private readonly onMessage: (m: FakeSqsMessage) => void = () => undefined) {
    super((req: IncomingMessage, body: string, res: ServerResponse) => {
      if (req.method === 'GET' && req.url === '/__messages') return json(res, 200, this.messages);
      const target = String(req.headers['x-amz-target'] ?? '');
      let input: { QueueUrl?: string; MessageBody?: string; Entries?: { Id: string; MessageBody: string }[] };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        return json(res, 400, { __type: 'InvalidParameterValue', message: 'body must be JSON' });
      }
      const accept = (text: string) => {
        const message = { queueUrl: input.QueueUrl ?? '', messageId: randomUUID(), body: text };
        this.messages.push(message);
        this.onMessage(message);
        return message;
      };
      if (target === 'AmazonSQS.SendMessage' && typeof input.MessageBody === 'string') {
        const m = accept(input.MessageBody);
        return json(res, 200, { MessageId: m.messageId, MD5OfMessageBody: md5(m.body) });
      }
      if (target === 'AmazonSQS.SendMessageBatch' && Array.isArray(input.Entries)) {
        const Successful = input.Entries.map((e) => {
          const m = accept(e.MessageBody);
          return { Id: e.Id, MessageId: m.messageId, MD5OfMessageBody: md5(e.MessageBody) };
        });
        return json(res, 200, { Successful, Failed: [] });
      }
      json(res, 400, { __type: 'UnsupportedOperation', message: `fake SQS does not implement ${target}` });
    });
  }
}
