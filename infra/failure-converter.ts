import { DefaultFailureConverter } from '@temporalio/common';

/**
 * The failure converter of an encrypted deployment (infra/temporal.ts temporalDataConverter):
 * a failure's message and stack trace move into an encoded attributes payload, which the payload
 * codec encrypts like any other, so an error text quoting an order id or a price never sits in a
 * history in clear text. Loaded by path into the workflow sandbox as well as the clients and
 * workers, so it imports nothing but @temporalio/common.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
