"""The recorder bot: answers Teams policy-recording invitations, captures media losslessly, reports via queues."""
